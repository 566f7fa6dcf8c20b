import { HostTensor } from '@diffssl/core';

/**
 * float32 bits to float16 bits, rounding to nearest even: the same result as
 * `float32ToFloat16Bits` of @diffssl/core, on raw bits.
 */
function halfBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const halfExponent = exponent - 112;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    const half = mantissa >>> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    return sign | (half + (remainder > midpoint || (remainder === midpoint && (half & 1) === 1) ? 1 : 0));
  }
  const half = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  return sign | (half + (remainder > 0x1000 || (remainder === 0x1000 && (half & 1) === 1) ? 1 : 0));
}

/**
 * Casts a float tensor to float16 straight from its typed array (no
 * intermediate number array): what `HostTensor.cast('float16')` returns,
 * an order of magnitude faster, for casting whole models.
 *
 * @param tensor - float32, float64 or float16 values (float64 is rounded to float32 first, as `cast` does)
 * @returns a new contiguous float16 tensor (the tensor itself when it is already float16)
 */
export function castToFloat16(tensor: HostTensor): HostTensor<'float16'> {
  if (tensor.dtype === 'float16') return tensor as HostTensor<'float16'>;
  if (tensor.dtype !== 'float32' && tensor.dtype !== 'float64') return tensor.cast('float16');
  const dense = tensor.contiguous();
  const values = dense.dtype === 'float32' ? (dense.data as Float32Array) : Float32Array.from(dense.data as Float64Array);
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < out.length; i++) out[i] = halfBits(bits[i]!);
  return new HostTensor('float16', out, dense.shape);
}
