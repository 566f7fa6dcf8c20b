const floatView = new Float32Array(1);
const intView = new Uint32Array(floatView.buffer);

/**
 * Converts a number to IEEE 754 half precision bits, rounding to nearest even.
 *
 * @param value - the number to convert
 * @returns the 16 bits of the half-precision value
 * @public
 */
export function float32ToFloat16Bits(value: number): number {
  floatView[0] = value;
  return halfBitsOfSingleBits(intView[0]!);
}

/**
 * Half-precision bits of the float32 with bits `x`, rounding to nearest even
 * (subnormals, overflow to infinity, quiet NaN).
 */
function halfBitsOfSingleBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) {
    // Inf or NaN (keep NaN quiet and non-zero).
    return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  }
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    const half = mantissa >>> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    const roundUp = remainder > midpoint || (remainder === midpoint && (half & 1) === 1);
    return sign | (half + (roundUp ? 1 : 0));
  }
  const half = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  const roundUp = remainder > 0x1000 || (remainder === 0x1000 && (half & 1) === 1);
  return sign | (half + (roundUp ? 1 : 0));
}

/**
 * Half-precision bits of every value, read straight from the float32 bits (no
 * number per element): what {@link float32ToFloat16Bits} gives element by
 * element, an order of magnitude faster, for casting whole models.
 *
 * @param values - float32 values
 * @returns their half-precision bits
 * @internal
 */
export function float32ArrayToFloat16Bits(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < out.length; i++) out[i] = halfBitsOfSingleBits(bits[i]!);
  return out;
}

/**
 * Converts IEEE 754 half precision bits to a number.
 *
 * @param bits - the 16 bits of a half-precision value
 * @returns the value as a number
 * @public
 */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : Number.NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
