import { ShapeError, DTypeError } from '../errors.js';
import { allocateData, assertDataType, dataTypeOfArray, isFloatDataType, type DataType, type DataTypeMap } from './dtype.js';
import { float16BitsToFloat32, float32ArrayToFloat16Bits, float32ToFloat16Bits } from './float16.js';

/** Row-major (C order) strides of a shape. @public */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    strides[axis] = stride;
    stride *= shape[axis]!;
  }
  return strides;
}

/** Number of elements of a static shape. @public */
export function shapeSize(shape: readonly number[]): number {
  let size = 1;
  for (const dim of shape) size *= dim;
  return size;
}

function assertStaticShape(shape: readonly number[], what: string): void {
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new ShapeError(`${what}: expected non-negative integer dimensions; found [${shape.join(', ')}]`);
    }
  }
}

/**
 * A tensor in host memory: a TypedArray plus shape, strides and offset. Views
 * ({@link HostTensor.reshape} of contiguous data, {@link HostTensor.transpose},
 * {@link HostTensor.slice}) share the data; {@link HostTensor.contiguous} copies
 * only when the layout requires it.
 *
 * @example
 * ```ts
 * const x = HostTensor.from('float32', [2, 3], [1, 2, 3, 4, 5, 6]);
 * x.transpose([1, 0]).get(2, 1); // 6
 * ```
 * @public
 */
export class HostTensor<D extends DataType = DataType> {
  /** The element data type. */
  readonly dtype: D;
  /** The size of each dimension. */
  readonly shape: readonly number[];
  /** Elements to step in `data` per unit of each dimension. */
  readonly strides: readonly number[];
  /** Index in `data` of the first element. */
  readonly offset: number;
  /** The storage (shared with views). */
  readonly data: DataTypeMap[D];

  /**
   * @param dtype - element data type
   * @param data - storage; its TypedArray type must match `dtype`
   * @param shape - dimensions
   * @param strides - defaults to row-major strides of `shape`
   * @param offset - index of the first element in `data`
   * @throws {@link ShapeError} when the layout reaches outside `data`
   */
  constructor(dtype: D, data: DataTypeMap[D], shape: readonly number[], strides?: readonly number[], offset = 0) {
    assertDataType(dtype);
    assertStaticShape(shape, 'HostTensor');
    const storedType = dataTypeOfArray(data);
    const expectedStorage = dtype === 'bool' ? 'uint8' : dtype;
    if (storedType !== expectedStorage) {
      throw new DTypeError(`HostTensor: dtype ${dtype} needs a ${allocateData(dtype, 0).constructor.name}; found ${data.constructor.name}`);
    }
    this.dtype = dtype;
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.offset = offset;
    if (this.strides.length !== shape.length) {
      throw new ShapeError(`HostTensor: expected ${shape.length} strides for shape [${shape.join(', ')}]; found ${this.strides.length}`);
    }
    if (this.size > 0) {
      let last = offset;
      let first = offset;
      for (let axis = 0; axis < shape.length; axis++) {
        const reach = (shape[axis]! - 1) * this.strides[axis]!;
        if (reach > 0) last += reach;
        else first += reach;
      }
      if (first < 0 || last >= data.length) {
        throw new ShapeError(
          `HostTensor: shape [${shape.join(', ')}] with strides [${this.strides.join(', ')}] and offset ${offset} needs elements ${first}..${last}; data holds ${data.length}`,
        );
      }
    }
  }

  /**
   * Creates a contiguous tensor from values.
   *
   * @param dtype - element data type
   * @param shape - dimensions
   * @param values - row-major values (numbers, or bigints for int64); a matching TypedArray is used without copying. float16 values given as numbers are converted to half bits.
   * @throws {@link ShapeError} when the number of values does not match the shape
   */
  static from<D extends DataType>(dtype: D, shape: readonly number[], values: ArrayLike<number> | ArrayLike<bigint> | DataTypeMap[D]): HostTensor<D> {
    assertDataType(dtype);
    assertStaticShape(shape, 'HostTensor.from');
    const size = shapeSize(shape);
    if (values.length !== size) {
      throw new ShapeError(`HostTensor.from: shape [${shape.join(', ')}] needs ${size} values; found ${values.length}`);
    }
    const storage = dtype === 'bool' ? 'uint8' : dtype;
    if (ArrayBuffer.isView(values) && dataTypeOfArray(values) === storage && !(dtype === 'float16' && !(values instanceof Uint16Array))) {
      return new HostTensor(dtype, values as DataTypeMap[D], shape);
    }
    const data = allocateData(dtype, size);
    if (dtype === 'int64') {
      for (let i = 0; i < size; i++) (data as BigInt64Array)[i] = BigInt(values[i] as number | bigint);
    } else if (dtype === 'float16') {
      for (let i = 0; i < size; i++) (data as Uint16Array)[i] = float32ToFloat16Bits(Number(values[i]));
    } else {
      for (let i = 0; i < size; i++) (data as Float64Array)[i] = Number(values[i]);
    }
    return new HostTensor(dtype, data, shape);
  }

  /** A zero-filled contiguous tensor. */
  static zeros<D extends DataType>(dtype: D, shape: readonly number[]): HostTensor<D> {
    assertStaticShape(shape, 'HostTensor.zeros');
    return new HostTensor(dtype, allocateData(dtype, shapeSize(shape)), shape);
  }

  /** A contiguous tensor with every element equal to `value`. */
  static full(dtype: 'float32' | 'float64' | 'int32' | 'uint8', shape: readonly number[], value: number): HostTensor {
    const tensor = HostTensor.zeros(dtype, shape);
    (tensor.data as Float32Array).fill(value);
    return tensor;
  }

  /** Number of elements. */
  get size(): number {
    return shapeSize(this.shape);
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** Whether the elements are laid out row-major from `offset` without gaps. */
  get isContiguous(): boolean {
    const expected = contiguousStrides(this.shape);
    return this.shape.every((dim, axis) => dim === 1 || this.strides[axis] === expected[axis]);
  }

  private flatIndex(indices: readonly number[]): number {
    if (indices.length !== this.rank) {
      throw new ShapeError(`HostTensor index: expected ${this.rank} indices; found ${indices.length}`);
    }
    let index = this.offset;
    for (let axis = 0; axis < indices.length; axis++) {
      const i = indices[axis]!;
      if (!Number.isInteger(i) || i < 0 || i >= this.shape[axis]!) {
        throw new ShapeError(`HostTensor index: index ${i} is out of range for axis ${axis} of size ${this.shape[axis]}`);
      }
      index += i * this.strides[axis]!;
    }
    return index;
  }

  /** Reads one element as a number (float16 decoded, int64 converted). */
  get(...indices: number[]): number {
    const raw = this.data[this.flatIndex(indices)]!;
    if (this.dtype === 'float16') return float16BitsToFloat32(raw as number);
    return Number(raw);
  }

  /** Writes one element from a number (float16 encoded, int64 converted). */
  set(value: number, ...indices: number[]): void {
    const index = this.flatIndex(indices);
    if (this.dtype === 'int64') (this.data as BigInt64Array)[index] = BigInt(Math.trunc(value));
    else if (this.dtype === 'float16') (this.data as Uint16Array)[index] = float32ToFloat16Bits(value);
    else (this.data as Float64Array)[index] = value;
  }

  /**
   * A contiguous tensor with the same values: this tensor itself when it is
   * already contiguous over exactly its data, else a copy.
   */
  contiguous(): HostTensor<D> {
    if (this.isContiguous && this.offset === 0 && this.data.length === this.size) return this;
    const out = allocateData(this.dtype, this.size) as unknown as { [i: number]: number | bigint };
    const source = this.data as unknown as { [i: number]: number | bigint };
    const { shape, strides } = this;
    const rank = shape.length;
    const index = new Array<number>(rank).fill(0);
    let sourceIndex = this.offset;
    for (let i = 0; i < this.size; i++) {
      out[i] = source[sourceIndex]!;
      for (let axis = rank - 1; axis >= 0; axis--) {
        index[axis]!++;
        sourceIndex += strides[axis]!;
        if (index[axis]! < shape[axis]!) break;
        sourceIndex -= strides[axis]! * shape[axis]!;
        index[axis] = 0;
      }
    }
    return new HostTensor(this.dtype, out as unknown as DataTypeMap[D], shape);
  }

  /**
   * The same values with another shape (one entry may be -1). A view when the
   * tensor is contiguous, a copy otherwise.
   *
   * @throws {@link ShapeError} when the sizes differ
   */
  reshape(shape: readonly number[]): HostTensor<D> {
    const inferred = [...shape];
    const unknown = inferred.indexOf(-1);
    if (unknown >= 0) {
      const known = shapeSize(inferred.filter((_, i) => i !== unknown));
      inferred[unknown] = known === 0 ? 0 : this.size / known;
    }
    if (shapeSize(inferred) !== this.size || inferred.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new ShapeError(`HostTensor.reshape: cannot reshape [${this.shape.join(', ')}] (${this.size} elements) to [${shape.join(', ')}]`);
    }
    const base = this.isContiguous ? this : this.contiguous();
    return new HostTensor(this.dtype, base.data, inferred, undefined, base.offset);
  }

  /**
   * A view with permuted axes.
   *
   * @param permutation - new order of the axes; defaults to reversing them
   * @throws {@link ShapeError} when `permutation` is not a permutation of the axes
   */
  transpose(permutation?: readonly number[]): HostTensor<D> {
    const perm = permutation ?? this.shape.map((_, i) => this.rank - 1 - i);
    const sorted = [...perm].sort((a, b) => a - b);
    if (perm.length !== this.rank || sorted.some((axis, i) => axis !== i)) {
      throw new ShapeError(`HostTensor.transpose: expected a permutation of 0..${this.rank - 1}; found [${perm.join(', ')}]`);
    }
    return new HostTensor(
      this.dtype,
      this.data,
      perm.map((a) => this.shape[a]!),
      perm.map((a) => this.strides[a]!),
      this.offset,
    );
  }

  /**
   * A view of `[start, end)` along each given axis.
   *
   * @param starts - start index per axis (from axis 0)
   * @param ends - end index per axis (exclusive)
   * @throws {@link ShapeError} when a range is outside the tensor
   */
  slice(starts: readonly number[], ends: readonly number[]): HostTensor<D> {
    let offset = this.offset;
    const shape = [...this.shape];
    for (let axis = 0; axis < starts.length; axis++) {
      const start = starts[axis]!;
      const end = ends[axis] ?? this.shape[axis]!;
      if (!(start >= 0 && start <= end && end <= this.shape[axis]!)) {
        throw new ShapeError(`HostTensor.slice: range ${start}..${end} is outside axis ${axis} of size ${this.shape[axis]}`);
      }
      offset += start * this.strides[axis]!;
      shape[axis] = end - start;
    }
    return new HostTensor(this.dtype, this.data, shape, this.strides, offset);
  }

  /** The values as plain numbers in row-major order (float16 decoded). */
  toArray(): number[] {
    const contiguous = this.contiguous();
    const values = new Array<number>(this.size);
    for (let i = 0; i < this.size; i++) {
      const raw = contiguous.data[i]!;
      values[i] = this.dtype === 'float16' ? float16BitsToFloat32(raw as number) : Number(raw);
    }
    return values;
  }

  /**
   * Converts the values to another data type (always a new contiguous tensor).
   * float16 is decoded from and encoded to half bits.
   */
  cast<T extends DataType>(dtype: T): HostTensor<T> {
    assertDataType(dtype);
    if (dtype === 'float16' && (this.dtype === 'float32' || this.dtype === 'float64')) {
      // Whole models are cast this way: straight from the typed array (float64 rounds to float32 first).
      const dense = this.contiguous();
      const singles = dense.data instanceof Float32Array ? dense.data : Float32Array.from(dense.data as Float64Array);
      return new HostTensor(dtype, float32ArrayToFloat16Bits(singles) as DataTypeMap[T], this.shape);
    }
    const values = this.toArray();
    if (dtype === 'int64') return HostTensor.from(dtype, this.shape, values.map((v) => BigInt(Math.trunc(v))) as unknown as ArrayLike<bigint>);
    if (!isFloatDataType(dtype) && dtype !== 'bool') return HostTensor.from(dtype, this.shape, values.map(Math.trunc));
    if (dtype === 'bool')
      return HostTensor.from(
        dtype,
        this.shape,
        values.map((v) => (v !== 0 ? 1 : 0)),
      );
    return HostTensor.from(dtype, this.shape, values);
  }
}
