export { confusionMatrixSvg, heatmapSvg, lineChartSvg, type ChartSeries, type HeatmapOptions, type LineChartOptions } from './charts.js';
export { markdownTable } from './markdown.js';
export { reportFieldsFromMetrics, runReportMarkdown, writeRunReport, type EpochRecord, type EvaluationRecord, type RunReport } from './run-report.js';
export { bestSweepCell, sweepHeatmapSvg, sweepMarkdown, writeSweepReport, type SweepCell, type SweepReport } from './sweep-report.js';
