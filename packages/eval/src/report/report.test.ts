import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@diffssl/core';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  confusionMatrixSvg,
  lineChartSvg,
  markdownTable,
  sweepHeatmapSvg,
  sweepMarkdown,
  writeRunReport,
  writeSweepReport,
  type RunReport,
  type SweepReport,
} from './index.js';

type XmlNode = { [key: string]: unknown };
const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', parseTagValue: false, parseAttributeValue: false, textNodeName: '#text' });

/** Parses an SVG after checking it is well-formed XML. */
function parseSvg(svg: string): XmlNode {
  expect(XMLValidator.validate(svg)).toBe(true);
  const document = parser.parse(svg) as XmlNode;
  expect(document.svg).toBeDefined();
  return document.svg as XmlNode;
}

/** Every element of a name anywhere in the tree. */
function findAll(node: unknown, name: string, out: XmlNode[] = []): XmlNode[] {
  if (Array.isArray(node)) for (const child of node) findAll(child, name, out);
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node as XmlNode)) {
      if (key.startsWith('@_')) continue;
      if (key === name)
        for (const item of Array.isArray(value) ? value : [value]) out.push(typeof item === 'object' && item ? (item as XmlNode) : { '#text': item });
      findAll(value, name, out);
    }
  }
  return out;
}

/** The character data of every <text> element. */
function texts(svg: XmlNode): string[] {
  return findAll(svg, 'text').map((t) => String(t['#text'] ?? ''));
}

const sweep: SweepReport = {
  scorer: 'ridge',
  blocks: [5, 10, 19, 24],
  timesteps: [10, 50, 150],
  cells: [
    { block: 5, timestep: 10, top1: 61.25 },
    { block: 10, timestep: 10, top1: 70.5 },
    { block: 19, timestep: 10, top1: 80 },
    { block: 24, timestep: 10, top1: 82.75 },
    { block: 5, timestep: 50, top1: 62 },
    { block: 10, timestep: 50, top1: 71.25 },
    { block: 19, timestep: 50, top1: 84.5 },
    { block: 24, timestep: 50, top1: 86 },
    { block: 5, timestep: 150, top1: 60 },
    { block: 10, timestep: 150, top1: 72 },
    { block: 24, timestep: 150, top1: 88.5, seconds: 3 },
  ],
};

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'diffssl-report-test-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('sweep heatmap', () => {
  it('is well-formed SVG with every block, timestep and value, the missing cell marked and the best cell outlined', () => {
    const svg = parseSvg(sweepHeatmapSvg(sweep));
    const labels = texts(svg);
    for (const block of ['5', '10', '19', '24']) expect(labels).toContain(block);
    for (const t of ['t=10', 't=50', 't=150']) expect(labels).toContain(t);
    for (const value of ['61.3', '70.5', '80.0', '82.8', '84.5', '86.0', '88.5', '60.0', '72.0']) expect(labels).toContain(value);
    expect(labels).toContain('block');
    expect(labels).toContain('timestep');
    const cells = findAll(svg, 'g').filter((g) => String(g['@_class']).startsWith('cell'));
    expect(cells).toHaveLength(12);
    const missing = cells.filter((g) => g['@_class'] === 'cell missing');
    expect(missing.map((g) => [g['@_data-block'], g['@_data-timestep']])).toEqual([['19', '150']]);
    const bestCell = cells.find((g) => g['@_data-block'] === '24' && g['@_data-timestep'] === '150')!;
    const bestRect = findAll(bestCell, 'rect')[0]!;
    const outline = findAll(svg, 'rect').filter((r) => r['@_class'] === 'best');
    expect(outline).toHaveLength(1);
    expect(Number(outline[0]!['@_x'])).toBeCloseTo(Number(bestRect['@_x']) + 1.5, 6);
    expect(Number(outline[0]!['@_y'])).toBeCloseTo(Number(bestRect['@_y']) + 1.5, 6);
    expect(labels.some((l) => l.includes('best: block 24 at t=150, 88.50 %'))).toBe(true);
  });

  it('puts the values in a Markdown table, one row per block, the best in bold', () => {
    const markdown = sweepMarkdown(sweep);
    const lines = markdown.split('\n');
    expect(lines).toContain('| block | t=10 | t=50 | t=150 |');
    expect(lines).toContain('| 24 | 82.75 | 86.00 | **88.50** |');
    expect(lines).toContain('| 19 | 80.00 | 84.50 | – |');
    expect(lines).toContain('| 5 | 61.25 | 62.00 | 60.00 |');
    expect(markdown).toContain('Best: block 24 at t=150, **88.50 %** top-1.');
  });

  it('rejects cells outside the grid or repeated', () => {
    expect(() => sweepHeatmapSvg({ ...sweep, cells: [...sweep.cells, { block: 7, timestep: 10, top1: 1 }] })).toThrow(/block 7, t=10\) is outside/);
    expect(() => sweepMarkdown({ ...sweep, cells: [...sweep.cells, sweep.cells[0]!] })).toThrow(/appears twice/);
  });
});

describe('confusion matrix and training curves', () => {
  it('draws the confusion matrix with escaped class names, counts in cells and true/predicted axes', () => {
    const names = ['T-shirt/top', 'Bag & <Co>', 'Ankle boot'];
    const matrix = [
      [50, 3, 0],
      [7, 41, 2],
      [0, 0, 123],
    ];
    const raw = confusionMatrixSvg(matrix, names);
    expect(raw).toContain('Bag &amp; &lt;Co&gt;');
    const svg = parseSvg(raw);
    const labels = texts(svg);
    for (const name of ['T-shirt/top', 'Ankle boot']) expect(labels.filter((l) => l === name)).toHaveLength(2);
    for (const count of ['50', '3', '7', '41', '2', '123']) expect(labels).toContain(count);
    expect(labels).toContain('true class');
    expect(labels).toContain('predicted class');
    const cell = findAll(svg, 'g').find((g) => g['@_data-true'] === 'T-shirt/top' && g['@_data-predicted'] === 'Bag & <Co>')!;
    expect(findAll(cell, 'text')[0]!['#text']).toBe('3');
    expect(() => confusionMatrixSvg([[1, 2]], ['a'])).toThrow(ConfigError);
  });

  it('draws line charts with one path per series, markers titled with their values and a legend', () => {
    const svg = parseSvg(
      lineChartSvg({
        title: 'Accuracy',
        xLabel: 'epoch',
        yLabel: '%',
        series: [
          {
            name: 'top-1',
            points: [
              [1, 40],
              [2, 60],
              [3, 75.5],
            ],
          },
          {
            name: 'top-5',
            points: [
              [1, 80],
              [2, 90],
              [3, 97],
            ],
          },
        ],
        yRange: [0, 100],
      }),
    );
    const groups = findAll(svg, 'g').filter((g) => g['@_class'] === 'series');
    expect(groups.map((g) => g['@_data-name'])).toEqual(['top-1', 'top-5']);
    expect(findAll(groups[0], 'path')).toHaveLength(1);
    expect(findAll(groups[0], 'title').map((t) => t['#text'])).toEqual(['top-1: 1, 40', 'top-1: 2, 60', 'top-1: 3, 75.5']);
    const labels = texts(svg);
    for (const label of ['Accuracy', 'epoch', '%', 'top-1', 'top-5', '0', '100']) expect(labels).toContain(label);
    expect(() => lineChartSvg({ title: 'x', xLabel: 'a', yLabel: 'b', series: [{ name: 's', points: [[1, Number.NaN]] }] })).toThrow(/no finite point/);
  });
});

describe('report files', () => {
  const report: RunReport = {
    protocol: 'linear',
    top1: 87.5,
    top5: 99.25,
    test_images: 400,
    test_loss: 0.4321,
    epochs: [
      { epoch: 1, loss: 1.25, learning_rate: 0.01 },
      { epoch: 2, loss: 0.75, learning_rate: 0.01 },
      { epoch: 3, loss: 0.5, learning_rate: 0.001 },
    ],
    evaluations: [
      { epoch: 2, top1: 85, top5: 99 },
      { epoch: 3, top1: 87.5, top5: 99.25 },
    ],
    class_names: ['coat', 'bag'],
    per_class_accuracy: [90, 85],
    confusion_matrix: [
      [180, 20],
      [30, 170],
    ],
    settings: { blocks: [24], timesteps: [150], seed: 0 },
    comparisons: [{ name: 'reference GD(L)', top1: 88.1 }],
  };

  it('writes report.json, report.md and the SVG charts, atomically, with the values in the tables', async () => {
    const directory = join(scratch, 'run');
    const written = await writeRunReport(directory, report);
    expect(written.map((p) => p.slice(directory.length + 1)).sort()).toEqual(['accuracy.svg', 'confusion.svg', 'loss.svg', 'report.json', 'report.md']);
    expect((await readdir(directory)).sort()).toEqual(['accuracy.svg', 'confusion.svg', 'loss.svg', 'report.json', 'report.md']);
    expect(JSON.parse(await readFile(join(directory, 'report.json'), 'utf8'))).toEqual(report);
    const markdown = (await readFile(join(directory, 'report.md'), 'utf8')).split('\n');
    expect(markdown).toContain('| top-1 | 87.50 % |');
    expect(markdown).toContain('| top-5 | 99.25 % |');
    expect(markdown).toContain('| test images scored | 400 |');
    expect(markdown).toContain('| 2 | 0.7500 | 0.01 | – | 85.00 % |');
    expect(markdown).toContain('| 3 | 0.5000 | 0.001 | – | 87.50 % |');
    expect(markdown).toContain('| bag | 200 | 85.00 % |');
    expect(markdown).toContain('| reference GD(L) | 88.10 % |  |');
    expect(markdown).toContain('| blocks | 24 |');
    expect(markdown).toContain('![confusion matrix](confusion.svg)');
    const loss = parseSvg(await readFile(join(directory, 'loss.svg'), 'utf8'));
    expect(findAll(loss, 'title').map((t) => t['#text'])).toContain('training loss: 2, 0.75');
    parseSvg(await readFile(join(directory, 'accuracy.svg'), 'utf8'));
    expect(texts(parseSvg(await readFile(join(directory, 'confusion.svg'), 'utf8')))).toContain('170');
  });

  it('writes the sweep files', async () => {
    const directory = join(scratch, 'sweep');
    await writeSweepReport(directory, sweep);
    const json = JSON.parse(await readFile(join(directory, 'sweep.json'), 'utf8')) as SweepReport;
    expect(json.best).toEqual({ block: 24, timestep: 150, top1: 88.5, seconds: 3 });
    expect(await readFile(join(directory, 'sweep.md'), 'utf8')).toContain('![top-1 by block and timestep](sweep.svg)');
    parseSvg(await readFile(join(directory, 'sweep.svg'), 'utf8'));
  });

  it("names an unwritable report path in one line (files are written with core's writeFileAtomic)", async () => {
    const blocker = join(scratch, 'a-file');
    await writeFile(blocker, '');
    const error = await writeRunReport(join(blocker, 'run'), report).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/^cannot write .*a-file\/run\/loss\.svg: ENOTDIR/);
    expect((error as Error).message).not.toContain('\n');
    await expect(writeRunReport(scratch, { ...report, top1: 120 })).rejects.toThrow(/top1 must be a percentage/);
    await expect(writeRunReport(scratch, { ...report, class_names: ['one'] })).rejects.toThrow(/1 class names for a 2-class confusion matrix/);
  });

  it('escapes pipes in Markdown cells', () => {
    expect(markdownTable(['a', 'b'], [['x|y', 2]], ['l', 'r'])).toBe('| a | b |\n| --- | ---: |\n| x\\|y | 2 |\n');
  });
});
