import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, FormatError, ShapeError, UnsupportedError } from '@diffssl/core';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { loadBatch } from './batches.js';
import { readImageFolder } from './image-folder.js';
import { openDataset } from './open.js';
import { readSubsetList, selectSubsetList } from './subset-list.js';

/** A gray PNG whose every pixel is `value` (PNG is lossless, so decoding gives `value` back). */
function png(value: number, width = 4, height = 3): Promise<Buffer> {
  return sharp(Buffer.alloc(width * height, value), { raw: { width, height, channels: 1 } })
    .png()
    .toBuffer();
}

function temporaryDirectory(): string {
  return mkdtempSync(join(tmpdir(), 'diffssl-folder-'));
}

async function write(root: string, files: Record<string, number | Buffer | string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), typeof content === 'number' ? await png(content) : content);
  }
}

describe('readImageFolder', () => {
  it('labels by sorted class folder, orders files like torchvision and skips non-image files', async () => {
    const root = temporaryDirectory();
    await write(root, {
      'zebra/b.png': 1,
      'zebra/a.PNG': 2,
      'apple/x.png': 3,
      'apple/nested/y.png': 4,
      'apple/nested-2/z.png': 5,
      'apple/nested/deeper/w.png': 7,
      'apple/notes.txt': 'not an image',
      'Mango/m.png': 6,
    });
    const data = await readImageFolder(root);
    // Python's sorted(): uppercase before lowercase. torchvision walks directories sorted by full path:
    // '.../nested' < '.../nested-2' < '.../nested/deeper' ('-' < '/'), files sorted within each.
    expect(data.classes).toEqual(['Mango', 'apple', 'zebra']);
    expect(data.files).toEqual([
      'Mango/m.png',
      'apple/x.png',
      'apple/nested/y.png',
      'apple/nested-2/z.png',
      'apple/nested/deeper/w.png',
      'zebra/a.PNG',
      'zebra/b.png',
    ]);
    expect(data.length).toBe(7);
    expect(Array.from({ length: 7 }, (_, i) => data.label(i))).toEqual([0, 1, 1, 1, 1, 2, 2]);
    const pixels = await Promise.all(Array.from({ length: 7 }, async (_, i) => (await data.get(i)).image.get(0, 0, 0)));
    expect(pixels).toEqual([6, 3, 4, 5, 7, 2, 1]);
    expect(data.source(0)).toBe(join(root, 'Mango/m.png'));
  });

  it('decodes JPEG and PNG files (the committed PIL fixture files)', async () => {
    const root = temporaryDirectory();
    const fixture = new URL('../../test/fixtures/pil/images/', import.meta.url);
    await write(root, { 'a/rgb.jpg': readFileSync(new URL('rgb-420.jpg', fixture)), 'b/gray.png': readFileSync(new URL('gray.png', fixture)) });
    const data = await readImageFolder(root);
    expect((await data.get(0)).image.shape).toEqual([3, 15, 21]);
    expect((await data.get(1)).image.shape).toEqual([1, 15, 21]);
  });

  it('a broken PNG is one FormatError naming the file', async () => {
    const root = temporaryDirectory();
    const good = await png(9, 16, 16);
    await write(root, { 'cat/good.png': good, 'cat/broken.png': good.subarray(0, Math.floor(good.length / 2)) });
    const data = await readImageFolder(root);
    const error = (await loadBatch(data, [0, 1], { imageSize: [16, 16] }).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(FormatError);
    expect(error.message.startsWith(`${join(root, 'cat/broken.png')}: cannot decode the image: `)).toBe(true);
    expect(error.message).not.toContain('\n');
  });

  it('an image of the wrong size with no resize is one ShapeError naming the file', async () => {
    const root = temporaryDirectory();
    await write(root, { 'a/ok.png': await png(1, 4, 3), 'b/odd.png': await png(1, 5, 3) });
    const data = await readImageFolder(root);
    await expect(loadBatch(data, [0, 1], { imageSize: [3, 4] })).rejects.toThrow(
      new ShapeError(`${join(root, 'b/odd.png')}: image is 3x5 (HxW); expected 3x4, and no resize is configured (use a center-crop or random-crop transform)`),
    );
    // Without an expected size, folders need a transform.
    await expect(loadBatch(data, [0])).rejects.toThrow(ConfigError);
    // With a resize both load.
    expect((await loadBatch(data, [0, 1], { transform: { kind: 'center-crop', size: 2 } })).images.shape).toEqual([2, 3, 2, 2]);
  });

  it('missing directories, empty classes, unknown classes and other image formats are one clear error each', async () => {
    const root = temporaryDirectory();
    await expect(readImageFolder(join(root, 'missing'))).rejects.toThrow(new ConfigError(`image folder: ${join(root, 'missing')} is not a directory`));
    await expect(readImageFolder(root)).rejects.toThrow(/has no class subfolders; expected .*\/<class>\/<image files>$/);
    await write(root, { 'a/x.png': 1, 'b/readme.txt': 'x' });
    await expect(readImageFolder(root)).rejects.toThrow(new ConfigError(`image folder: class folder ${join(root, 'b')} has no .jpg, .jpeg or .png file`));
    await expect(readImageFolder(root, { classes: ['b'] })).rejects.toThrow(/1 subfolder\(s\) outside the 1 given classes: a$/);
    await write(root, { 'b/photo.webp': 'x' });
    await expect(readImageFolder(root)).rejects.toThrow(UnsupportedError);
    const data = await readImageFolder(root, { classes: ['a'] }).catch((e: unknown) => e);
    expect(data).toBeInstanceOf(ConfigError);
  });
});

describe('subset lists', () => {
  it('select the listed files by name or relative path, in folder order', async () => {
    const root = temporaryDirectory();
    await write(root, {
      'train/n1/n1_1.JPEG.png': 1,
      'train/n1/n1_2.png': 2,
      'train/n2/n2_1.png': 3,
      'train/n2/n2_2.png': 4,
      'val/n1/v.png': 5,
      'val/n2/w.png': 6,
    });
    writeFileSync(join(root, '1percent.txt'), 'n2_2.png\r\n\nn1/n1_2.png\r\n  n1_1.JPEG.png \n');
    const names = await readSubsetList(join(root, '1percent.txt'));
    expect(names).toEqual(['n2_2.png', 'n1/n1_2.png', 'n1_1.JPEG.png']);
    const subset = selectSubsetList(await readImageFolder(join(root, 'train')), names);
    expect(subset.length).toBe(3);
    expect([0, 1, 2].map((i) => subset.source(i))).toEqual(['n1/n1_1.JPEG.png', 'n1/n1_2.png', 'n2/n2_2.png'].map((f) => join(root, 'train', f)));
    expect([0, 1, 2].map((i) => subset.label(i))).toEqual([0, 0, 1]);
    // Through openDataset, with the validation split labeled by the training classes.
    const opened = await openDataset(root, { split: 'train', subsetList: join(root, '1percent.txt') });
    expect(opened.length).toBe(3);
    const val = await openDataset(root, { split: 'test' });
    expect([val.length, val.label(1), val.classes]).toEqual([2, 1, ['n1', 'n2']]);
  });

  it('unknown names are one ConfigError listing a few of them and how many', async () => {
    const root = temporaryDirectory();
    await write(root, { 'n1/a.png': 1 });
    const data = await readImageFolder(root);
    const names = ['a.png', ...Array.from({ length: 7 }, (_, i) => `missing_${i}.JPEG`)];
    expect(() => selectSubsetList(data, names)).toThrow(
      new ConfigError(
        `subset list: 7 of 8 names are not files of ${root}, e.g. missing_0.JPEG, missing_1.JPEG, missing_2.JPEG, missing_3.JPEG, missing_4.JPEG`,
      ),
    );
  });

  it('ambiguous names, repeated names, empty and missing lists are one ConfigError each', async () => {
    const root = temporaryDirectory();
    await write(root, { 'n1/a.png': 1, 'n2/a.png': 2 });
    const data = await readImageFolder(root);
    expect(() => selectSubsetList(data, ['a.png'])).toThrow(/a\.png matches 2 files .*\(n1\/a\.png, n2\/a\.png\); name it as <class>\/<file>/);
    expect(selectSubsetList(data, ['n2/a.png']).label(0)).toBe(1);
    writeFileSync(join(root, 'twice.txt'), 'a.png\na.png\n');
    await expect(readSubsetList(join(root, 'twice.txt'))).rejects.toThrow(/names a\.png more than once/);
    writeFileSync(join(root, 'empty.txt'), '\n\n');
    await expect(readSubsetList(join(root, 'empty.txt'))).rejects.toThrow(/holds no file names/);
    await expect(readSubsetList(join(root, 'none.txt'))).rejects.toThrow(/cannot read .*none\.txt: ENOENT/);
  });
});

describe('openDataset', () => {
  it('says which layouts it expected when it finds none', async () => {
    const root = temporaryDirectory();
    await expect(openDataset(root, { split: 'train' })).rejects.toThrow(
      new ConfigError(`data: ${root} has no train split; expected train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz], or a train/<class>/ folder`),
    );
    await expect(openDataset(join(root, 'x'), { split: 'train' })).rejects.toThrow(ConfigError);
  });
});
