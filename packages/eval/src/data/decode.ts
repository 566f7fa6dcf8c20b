import { FormatError, HostTensor, UnsupportedError } from '@diffssl/core';
import type SharpModule from 'sharp';

type SharpFactory = typeof SharpModule;

let sharpModule: Promise<SharpFactory> | undefined;

/** sharp, imported on first use (so that IDX and array datasets never load it). */
function loadSharp(): Promise<SharpFactory> {
  sharpModule ??= import('sharp').then(
    (module) => module.default,
    (cause: unknown) => {
      sharpModule = undefined;
      throw new UnsupportedError(
        `decoding JPEG/PNG needs the 'sharp' package, which could not be loaded on this platform: ${(cause as Error).message.split('\n')[0]}`,
      );
    },
  );
  return sharpModule;
}

function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, '; ').trim();
}

/** HWC interleaved -> CHW planes, keeping the first `channels` of `stride` interleaved values. */
function toPlanes(interleaved: ArrayLike<number>, pixels: number, stride: number, channels: number): Uint8Array {
  const out = new Uint8Array(channels * pixels);
  for (let c = 0; c < channels; c++) {
    const plane = c * pixels;
    for (let p = 0; p < pixels; p++) out[plane + p] = interleaved[p * stride + c]!;
  }
  return out;
}

/** PIL's `cmyk2rgb` (Convert.c): `255 - k` scaled down by each ink with its MULDIV255 rounding. */
function cmykToRgbPlanes(cmyk: Uint8Array, pixels: number): Uint8Array {
  const out = new Uint8Array(3 * pixels);
  for (let p = 0; p < pixels; p++) {
    const inverseBlack = 255 - cmyk[p * 4 + 3]!;
    for (let c = 0; c < 3; c++) {
      const product = cmyk[p * 4 + c]! * inverseBlack + 128;
      const scaled = ((product >> 8) + product) >> 8;
      out[c * pixels + p] = Math.min(255, Math.max(0, inverseBlack - scaled));
    }
  }
  return out;
}

/**
 * Decodes a JPEG or PNG file to the pixels that Pillow's
 * `Image.open(file).convert('RGB')` gives (what torchvision and
 * guided-diffusion feed their transforms), through sharp (libvips with
 * libjpeg-turbo / libspng): gray images stay one channel (PIL replicates them;
 * {@link loadBatch} does that later), alpha is dropped without compositing,
 * palettes are expanded, embedded ICC profiles and EXIF orientation are
 * ignored, CMYK JPEGs use PIL's naive CMYK -> RGB formula, 16-bit RGB keeps
 * the high byte, 16-bit gray is clipped to 255 (PIL's mode `I`) and 16-bit
 * gray with alpha keeps the high byte. The
 * committed PIL fixture checks each of these cases bit for bit.
 *
 * @param bytes - the encoded file
 * @param file - the file name, for messages
 * @returns uint8 [C,H,W] with C = 1 (gray) or 3 (RGB)
 * @throws `FormatError` naming the file when it is not a decodable JPEG or PNG (truncated, corrupt, other format);
 *   `UnsupportedError` when sharp cannot be loaded
 * @public
 */
export async function decodeImage(bytes: Uint8Array, file: string): Promise<HostTensor<'uint8'>> {
  const sharp = await loadSharp();
  // failOn 'warning': a truncated or damaged file is an error, as in PIL (which raises on truncated images).
  const open = () => sharp(bytes, { ignoreIcc: true, failOn: 'warning' });
  try {
    const meta = await open().metadata();
    if (meta.format !== 'jpeg' && meta.format !== 'png') {
      throw new FormatError(`${file}: expected a JPEG or PNG image; found ${meta.format ?? 'an unknown format'}`);
    }
    const width = meta.width;
    const height = meta.height;
    const pixels = width * height;
    const describe = `${meta.format} ${meta.space ?? 'unknown colour space'} ${meta.depth ?? ''} with ${meta.channels} channels`;
    if (meta.space === 'cmyk') {
      const { data, info } = await open().pipelineColourspace('cmyk').toColourspace('cmyk').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      if (info.channels !== 4)
        throw new UnsupportedError(`${file}: cannot decode ${describe}: expected 4 CMYK channels from the decoder; found ${info.channels}`);
      return new HostTensor('uint8', cmykToRgbPlanes(data, pixels), [3, height, width]);
    }
    if (meta.space === 'grey16') {
      // PIL opens a 16-bit gray PNG as mode I, whose convert('RGB') clips the values to 0..255, and
      // a 16-bit gray+alpha PNG through rawmode LA;16B, which keeps the high byte.
      const { data, info } = await open().removeAlpha().toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
      if (info.channels !== 1) throw new UnsupportedError(`${file}: cannot decode ${describe}: expected 1 channel from the decoder; found ${info.channels}`);
      const values = new DataView(data.buffer, data.byteOffset, data.byteLength);
      const out = new Uint8Array(pixels);
      for (let p = 0; p < pixels; p++) {
        const value = values.getUint16(p * 2, true);
        out[p] = meta.hasAlpha ? value >> 8 : Math.min(255, value);
      }
      return new HostTensor('uint8', out, [1, height, width]);
    }
    const gray = meta.space === 'b-w';
    const { data, info } = await open()
      .removeAlpha()
      .toColourspace(gray ? 'b-w' : 'srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const channels = gray ? 1 : 3;
    if (info.channels !== channels || info.width !== width || info.height !== height) {
      throw new UnsupportedError(
        `${file}: cannot decode ${describe}: expected ${channels} channels of ${width}x${height} from the decoder; found ${info.channels} of ${info.width}x${info.height}`,
      );
    }
    return new HostTensor('uint8', toPlanes(data, pixels, channels, channels), [channels, height, width]);
  } catch (cause) {
    if (cause instanceof FormatError || cause instanceof UnsupportedError) throw cause;
    throw new FormatError(`${file}: cannot decode the image: ${oneLine((cause as Error).message)}`, { cause });
  }
}
