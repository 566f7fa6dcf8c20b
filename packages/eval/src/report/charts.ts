import { ConfigError } from '@diffssl/core';
import { colorOf, element, formatNumber, niceTicks, svgDocument, text } from './svg.js';

const SERIES_COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

/** One line of a {@link lineChartSvg}. @public */
export interface ChartSeries {
  /** Legend label. */
  name: string;
  /** [x, y] points in x order; non-finite y values are skipped. */
  points: ReadonlyArray<readonly [number, number]>;
}

/** Options of {@link lineChartSvg}. @public */
export interface LineChartOptions {
  /** The chart's title. */
  title: string;
  /** The x axis title. */
  xLabel: string;
  /** The y axis title. */
  yLabel: string;
  /** The lines to draw. */
  series: readonly ChartSeries[];
  /** Width in pixels (default 640). */
  width?: number;
  /** Height in pixels (default 360). */
  height?: number;
  /** Fixed y range, e.g. [0, 100] for accuracies (default: the data's, padded). */
  yRange?: [number, number];
}

/**
 * A line chart (training curves: loss per epoch, accuracy per evaluation) as a
 * standalone SVG document, with axes, round ticks, markers and a legend.
 *
 * @param options - title, axis labels and series
 * @returns the SVG text
 * @throws {@link @diffssl/core!ConfigError} when no series has a finite point
 * @example
 * ```ts
 * lineChartSvg({ title: 'Training loss', xLabel: 'epoch', yLabel: 'loss', series: [{ name: 'train', points: [[1, 2.1], [2, 1.4]] }] });
 * ```
 * @public
 */
export function lineChartSvg(options: LineChartOptions): string {
  const width = options.width ?? 640;
  const height = options.height ?? 360;
  const series = options.series.map((s) => ({ ...s, points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)) }));
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) throw new ConfigError(`lineChartSvg: '${options.title}' has no finite point to draw`);
  const margin = { left: 64, right: 20, top: 36, bottom: 48 };
  const legendWidth = series.length > 1 ? 120 : 0;
  const plotWidth = width - margin.left - margin.right - legendWidth;
  const plotHeight = height - margin.top - margin.bottom;
  let [xMin, xMax] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  if (xMin === xMax) [xMin, xMax] = [xMin - 1, xMax + 1];
  let [yMin, yMax] = options.yRange ?? [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (!options.yRange) {
    const pad = (yMax - yMin) * 0.05 || Math.abs(yMax) * 0.05 || 1;
    [yMin, yMax] = [yMin - pad, yMax + pad];
  }
  const xOf = (x: number) => margin.left + ((x - xMin) / (xMax - xMin)) * plotWidth;
  const yOf = (y: number) => margin.top + (1 - (y - yMin) / (yMax - yMin)) * plotHeight;
  const parts: string[] = [];
  parts.push(element('text', { x: width / 2, y: 22, 'text-anchor': 'middle', 'font-size': 15, 'font-weight': 'bold' }, [text(options.title)]));
  const xTicks = niceTicks(xMin, xMax, Math.min(10, Math.max(2, Math.round(xMax - xMin)))).filter((v) => v >= xMin && v <= xMax);
  const yTicks = niceTicks(yMin, yMax, 5).filter((v) => v >= yMin && v <= yMax);
  for (const y of yTicks) {
    parts.push(element('line', { x1: margin.left, x2: margin.left + plotWidth, y1: yOf(y), y2: yOf(y), stroke: '#e0e0e0' }));
    parts.push(element('text', { x: margin.left - 6, y: yOf(y) + 4, 'text-anchor': 'end' }, [text(formatNumber(y, 4))]));
  }
  for (const x of xTicks) parts.push(element('text', { x: xOf(x), y: margin.top + plotHeight + 16, 'text-anchor': 'middle' }, [text(formatNumber(x, 3))]));
  parts.push(element('rect', { x: margin.left, y: margin.top, width: plotWidth, height: plotHeight, fill: 'none', stroke: '#444444' }));
  parts.push(element('text', { x: margin.left + plotWidth / 2, y: height - 10, 'text-anchor': 'middle' }, [text(options.xLabel)]));
  parts.push(
    element('text', { x: 16, y: margin.top + plotHeight / 2, 'text-anchor': 'middle', transform: `rotate(-90 16 ${margin.top + plotHeight / 2})` }, [
      text(options.yLabel),
    ]),
  );
  series.forEach((s, i) => {
    const color = SERIES_COLORS[i % SERIES_COLORS.length]!;
    const markers = s.points.map(([x, y]) =>
      element('circle', { cx: xOf(x), cy: yOf(y), r: 3, fill: color }, [
        element('title', {}, [text(`${s.name}: ${formatNumber(x, 3)}, ${formatNumber(y, 4)}`)]),
      ]),
    );
    const path = s.points.map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${formatNumber(xOf(x), 2)} ${formatNumber(yOf(y), 2)}`).join(' ');
    parts.push(
      element('g', { class: 'series', 'data-name': s.name }, [
        ...(s.points.length > 1 ? [element('path', { d: path, fill: 'none', stroke: color, 'stroke-width': 2 })] : []),
        ...markers,
      ]),
    );
    if (legendWidth > 0) {
      const ly = margin.top + 8 + i * 18;
      parts.push(element('rect', { x: width - margin.right - legendWidth + 10, y: ly - 8, width: 12, height: 12, fill: color }));
      parts.push(element('text', { x: width - margin.right - legendWidth + 28, y: ly + 2 }, [text(s.name)]));
    }
  });
  return svgDocument(width, height, parts, options.title);
}

/** Options of {@link heatmapSvg}. @public */
export interface HeatmapOptions {
  /** The chart's title. */
  title: string;
  /** Labels of the rows, top to bottom. */
  rowLabels: readonly string[];
  /** Labels of the columns, left to right. */
  columnLabels: readonly string[];
  /** The row axis title. */
  rowTitle: string;
  /** The column axis title. */
  columnTitle: string;
  /** values[row][column]; null for a missing cell (drawn gray). */
  values: ReadonlyArray<ReadonlyArray<number | null>>;
  /** The number printed in each cell. */
  format?: (value: number, row: number, column: number) => string;
  /** The value that picks the colour (default: the value itself). */
  colorValue?: (value: number, row: number, column: number) => number;
  /** Colour range (default: min and max of the colour values). */
  colorRange?: [number, number];
  /** Labels at the low and high end of the colour bar (default: the range's numbers). */
  colorLabels?: [string, string];
  /** A cell to outline as the best, [row, column]. */
  highlight?: readonly [number, number];
  /** A line under the chart (e.g. which cell is best). */
  caption?: string;
  /** Extra attributes per cell (e.g. `data-block`), for tools that read the SVG. */
  cellAttributes?: (row: number, column: number) => Record<string, string | number>;
  /** Cell width in pixels (default 44). */
  cellWidth?: number;
  /** Cell height in pixels (default 30). */
  cellHeight?: number;
}

/**
 * A heatmap with numbers in the cells, labelled axes, a colour bar and an
 * optional outlined best cell, as a standalone SVG document.
 *
 * @param options - labels, values, formatting and highlight
 * @returns the SVG text
 * @throws {@link @diffssl/core!ConfigError} when the values do not match the labels
 * @public
 */
export function heatmapSvg(options: HeatmapOptions): string {
  const { rowLabels, columnLabels, values } = options;
  if (values.length !== rowLabels.length || values.some((row) => row.length !== columnLabels.length)) {
    throw new ConfigError(`heatmapSvg: '${options.title}' needs ${rowLabels.length} rows of ${columnLabels.length} values`);
  }
  const format = options.format ?? ((v: number) => formatNumber(v, 1));
  const colorValue = options.colorValue ?? ((v: number) => v);
  const colorValues = values.flatMap((row, r) => row.flatMap((v, c) => (v === null || !Number.isFinite(v) ? [] : [colorValue(v, r, c)])));
  const [low, high] = options.colorRange ?? [Math.min(...colorValues), Math.max(...colorValues)];
  const cellWidth = options.cellWidth ?? 44;
  const cellHeight = options.cellHeight ?? 30;
  const longestRow = Math.max(...rowLabels.map((l) => l.length), 1);
  const longestColumn = Math.max(...columnLabels.map((l) => l.length), 1);
  const rotate = longestColumn * 7 > cellWidth;
  const left = 40 + Math.min(200, longestRow * 7);
  const top = 48;
  const columnLabelHeight = rotate ? Math.min(160, longestColumn * 6 + 10) : 22;
  const gridWidth = columnLabels.length * cellWidth;
  const gridHeight = rowLabels.length * cellHeight;
  const barX = left + gridWidth + 24;
  const width = Math.max(barX + 24 + 7 * Math.max(8, ...(options.colorLabels ?? []).map((l) => l.length)), 320);
  const height = top + gridHeight + columnLabelHeight + 40 + (options.caption ? 20 : 0);
  const parts: string[] = [element('text', { x: width / 2, y: 24, 'text-anchor': 'middle', 'font-size': 15, 'font-weight': 'bold' }, [text(options.title)])];
  values.forEach((row, r) => {
    row.forEach((value, c) => {
      const x = left + c * cellWidth;
      const y = top + r * cellHeight;
      const extra = options.cellAttributes?.(r, c) ?? {};
      if (value === null || !Number.isFinite(value)) {
        parts.push(
          element('g', { class: 'cell missing', ...extra }, [
            element('rect', { x, y, width: cellWidth, height: cellHeight, fill: '#dddddd', stroke: '#ffffff' }),
            element('text', { x: x + cellWidth / 2, y: y + cellHeight / 2 + 4, 'text-anchor': 'middle', fill: '#666666' }, [text('–')]),
          ]),
        );
        return;
      }
      const { fill, darkText } = colorOf(high > low ? (colorValue(value, r, c) - low) / (high - low) : 1);
      const label = format(value, r, c);
      parts.push(
        element('g', { class: 'cell', ...extra }, [
          element('title', {}, [text(`${options.rowTitle} ${rowLabels[r]}, ${options.columnTitle} ${columnLabels[c]}: ${label}`)]),
          element('rect', { x, y, width: cellWidth, height: cellHeight, fill, stroke: '#ffffff' }),
          element(
            'text',
            { x: x + cellWidth / 2, y: y + cellHeight / 2 + 4, 'text-anchor': 'middle', fill: darkText ? '#000000' : '#ffffff', 'font-size': 11 },
            [text(label)],
          ),
        ]),
      );
    });
  });
  if (options.highlight) {
    const [r, c] = options.highlight;
    parts.push(
      element('rect', {
        class: 'best',
        x: left + c * cellWidth + 1.5,
        y: top + r * cellHeight + 1.5,
        width: cellWidth - 3,
        height: cellHeight - 3,
        fill: 'none',
        stroke: '#e4002b',
        'stroke-width': 3,
      }),
    );
  }
  rowLabels.forEach((label, r) =>
    parts.push(element('text', { x: left - 6, y: top + r * cellHeight + cellHeight / 2 + 4, 'text-anchor': 'end' }, [text(label)])),
  );
  columnLabels.forEach((label, c) => {
    const x = left + c * cellWidth + cellWidth / 2;
    const y = top + gridHeight + 14;
    parts.push(
      rotate
        ? element('text', { x, y, 'text-anchor': 'end', transform: `rotate(-45 ${x} ${y})` }, [text(label)])
        : element('text', { x, y, 'text-anchor': 'middle' }, [text(label)]),
    );
  });
  parts.push(
    element('text', { x: left + gridWidth / 2, y: top + gridHeight + columnLabelHeight + 18, 'text-anchor': 'middle', 'font-weight': 'bold' }, [
      text(options.columnTitle),
    ]),
  );
  parts.push(
    element('text', { x: 14, y: top + gridHeight / 2, 'text-anchor': 'middle', 'font-weight': 'bold', transform: `rotate(-90 14 ${top + gridHeight / 2})` }, [
      text(options.rowTitle),
    ]),
  );
  // Colour bar.
  const barHeight = Math.max(60, gridHeight);
  const steps = 24;
  for (let i = 0; i < steps; i++)
    parts.push(
      element('rect', { x: barX, y: top + (i * barHeight) / steps, width: 14, height: barHeight / steps + 0.5, fill: colorOf(1 - i / (steps - 1)).fill }),
    );
  const [lowLabel, highLabel] = options.colorLabels ?? [formatNumber(low, 2), formatNumber(high, 2)];
  parts.push(element('text', { x: barX + 18, y: top + 10 }, [text(highLabel)]));
  parts.push(element('text', { x: barX + 18, y: top + barHeight }, [text(lowLabel)]));
  if (options.caption) parts.push(element('text', { x: left, y: height - 8 }, [text(options.caption)]));
  return svgDocument(width, height, parts, options.title);
}

/**
 * The confusion matrix as a heatmap: true classes as rows, predicted classes
 * as columns, counts in the cells, colour by the share of the true class.
 *
 * @param matrix - counts[true][predicted]
 * @param classNames - names in class-index order (default: the indices)
 * @param title - default 'Confusion matrix'
 * @returns the SVG text
 * @throws {@link @diffssl/core!ConfigError} when the matrix is not square or the names do not match it
 * @public
 */
export function confusionMatrixSvg(matrix: ReadonlyArray<readonly number[]>, classNames?: readonly string[], title = 'Confusion matrix'): string {
  const names = classNames ?? matrix.map((_, i) => String(i));
  if (matrix.some((row) => row.length !== matrix.length) || names.length !== matrix.length) {
    throw new ConfigError(`confusionMatrixSvg: expected a square matrix with one name per class; found ${matrix.length} rows and ${names.length} names`);
  }
  const totals = matrix.map((row) => row.reduce((a, b) => a + b, 0));
  return heatmapSvg({
    title,
    rowLabels: names,
    columnLabels: names,
    rowTitle: 'true class',
    columnTitle: 'predicted class',
    values: matrix,
    format: (v) => String(v),
    colorValue: (v, r) => (totals[r]! > 0 ? v / totals[r]! : 0),
    colorRange: [0, 1],
    colorLabels: ['0 % of class', '100 % of class'],
    cellWidth: Math.max(36, 8 * Math.max(...matrix.flat().map((v) => String(v).length)) + 8),
    cellAttributes: (r, c) => ({ 'data-true': names[r]!, 'data-predicted': names[c]! }),
  });
}
