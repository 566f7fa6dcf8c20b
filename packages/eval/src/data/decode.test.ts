import { readFileSync } from 'node:fs';
import { FormatError, readSafetensors, type HostTensor } from '@diffssl/core';
import { describe, expect, it } from 'vitest';
import { decodeImage } from './decode.js';

const FIXTURE = new URL('../../test/fixtures/pil/', import.meta.url);
const expected = readSafetensors(readFileSync(new URL('decode.safetensors', FIXTURE)));
const modes = JSON.parse(expected.metadata.modes!) as Record<string, string>;

/** uint8 [C,H,W] (C = 1 or 3) -> HWC RGB, as np.array(image.convert('RGB')). */
function toRgbHwc(image: HostTensor<'uint8'>): Uint8Array {
  const [channels, height, width] = image.shape as [number, number, number];
  const data = image.contiguous().data;
  const out = new Uint8Array(height * width * 3);
  for (let p = 0; p < height * width; p++) for (let c = 0; c < 3; c++) out[p * 3 + c] = data[(channels === 1 ? 0 : c) * height * width + p]!;
  return out;
}

describe('decodeImage (sharp) against PIL convert("RGB")', () => {
  it('covers every kind in the fixture', () => {
    expect(Object.keys(modes).length).toBeGreaterThanOrEqual(15);
  });
  for (const [file, mode] of Object.entries(modes)) {
    it(`${file} (PIL mode ${mode}) decodes bit-exactly`, async () => {
      const image = await decodeImage(readFileSync(new URL(`images/${file}`, FIXTURE)), file);
      const reference = expected.tensors.get(file)!;
      expect(image.shape.slice(1)).toEqual(reference.shape.slice(0, 2));
      // Gray sources stay one channel (replicated to RGB later); colour ones have three.
      expect(image.shape[0]).toBe(/^(gray|one-bit)/.test(file) ? 1 : 3);
      const actual = toRgbHwc(image);
      const want = reference.contiguous().data as Uint8Array;
      let differing = 0;
      for (let i = 0; i < want.length; i++) if (actual[i] !== want[i]) differing++;
      expect(differing).toBe(0);
    });
  }
  it('a truncated PNG is one FormatError naming the file', async () => {
    const bytes = readFileSync(new URL('images/rgb.png', FIXTURE));
    const error = await decodeImage(bytes.subarray(0, bytes.length - 200), 'cat/broken.png').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as Error).message).toMatch(/^cat\/broken\.png: cannot decode the image: /);
    expect((error as Error).message).not.toContain('\n');
  });
  it('a truncated JPEG and a file that is no image are one FormatError each', async () => {
    const bytes = readFileSync(new URL('images/rgb-progressive.jpg', FIXTURE));
    await expect(decodeImage(bytes.subarray(0, bytes.length >> 1), 'a.jpg')).rejects.toThrow(/^a\.jpg: cannot decode the image: .*premature end of JPEG/);
    await expect(decodeImage(new TextEncoder().encode('hello'), 'b.png')).rejects.toThrow(FormatError);
  });
});
