/**
 * The float32 value the model sees for each uint8 pixel value: `x / 127.5 - 1`
 * evaluated in float32, step by step, as guided-diffusion does
 * (`arr.astype(np.float32) / 127.5 - 1`). torchvision's `ToTensor` +
 * `Normalize(0.5, 0.5)` (`(x / 255 - 0.5) / 0.5` in float32) gives the same 256
 * values. Computing `x / 127.5 - 1` in float64 and rounding once differs from
 * it in the last bit for half of the values.
 *
 * @example
 * ```ts
 * const model = Float32Array.from(gray, (v) => PIXEL_TO_MODEL[v]!);
 * ```
 * @public
 */
export const PIXEL_TO_MODEL: Float32Array = (() => {
  const table = new Float32Array(256);
  for (let value = 0; value < 256; value++) table[value] = Math.fround(Math.fround(value / 127.5) - 1);
  return table;
})();
